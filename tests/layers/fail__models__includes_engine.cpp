// Models are below the engine: the forward contract calls them, not the other way round.
#include "engine/step_runner.h"
