// The capsule layer is below the engine.
#include "engine/session.h"
