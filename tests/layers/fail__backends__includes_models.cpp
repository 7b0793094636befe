// A backend may not know models: it gets weights as a list of named views.
#include "models/model.h"
