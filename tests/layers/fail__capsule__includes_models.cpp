// The capsule layer knows arenas and their regions, never models.
#include "models/model.h"
