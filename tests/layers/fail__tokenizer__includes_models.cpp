// The tokenizer does not know models.
#include "models/model.h"
