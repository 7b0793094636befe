// Allowed (a control: the checks above fail for the reason they name).
#include "backends/backend.h"
