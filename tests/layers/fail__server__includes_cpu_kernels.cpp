// The server does not know kernels.
#include "backends/cpu/kernels.h"
