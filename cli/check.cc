// sitesync check: a read-only preflight for CI.
#include <iostream>

#include "cli/commands.h"

namespace sitesync::cli {

int RunCheck(const Settings&, const aws::EnvLookup&) {
  std::cerr << "sitesync: check is not built yet\n";
  return kExitFailed;
}

}  // namespace sitesync::cli
