// Allowed (a control).
#include "capsule/capsule.h"
#include "models/model.h"
