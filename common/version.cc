#include "common/version.h"

namespace commitd {

const char* const kVersion = COMMITD_VERSION;

}  // namespace commitd
