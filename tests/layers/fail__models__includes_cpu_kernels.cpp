// Models call Backend ops and never see a backend's kernels.
#include "backends/cpu/kernels.h"
