// The commands that are not a sync: each in its own file. Private to cli/.
#pragma once

#include "aws/aws.h"
#include "cli/cli.h"
#include "cli/output.h"

namespace sitesync::cli {

/// `sitesync sitemap [SOURCE] --base-url URL [-o FILE]` (cli/sitemap_cmd.cc). The config is already loaded.
int RunSitemap(const Settings& settings, Output& out);

/// `sitesync init` (cli/init.cc): runs in the current folder and loads no config.
int RunInit(const Settings& settings);

/// `sitesync check [DEST]` (cli/check.cc): read-only preflight. The config is already loaded.
int RunCheck(const Settings& settings, const aws::EnvLookup& env);

}  // namespace sitesync::cli
