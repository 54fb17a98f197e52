// sitesync sitemap: writes sitemap.xml for SOURCE's HTML pages.
#include "cli/commands.h"

namespace sitesync::cli {

int RunSitemap(const Settings&, Output& out) {
  out.Fatal("sitemap is not built yet");
  return kExitFailed;
}

}  // namespace sitesync::cli
