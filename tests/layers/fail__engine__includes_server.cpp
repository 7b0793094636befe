// The engine knows nothing of HTTP.
#include "server/api_error.h"
