// sitesync init: writes a commented sitesync.yaml for the generator found in the current folder.
#include <iostream>

#include "cli/commands.h"

namespace sitesync::cli {

int RunInit(const Settings&) {
  std::cerr << "sitesync: init is not built yet\n";
  return kExitFailed;
}

}  // namespace sitesync::cli
