// File formats do not know kernels.
#include "backends/backend.h"
