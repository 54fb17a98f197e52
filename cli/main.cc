// sitesync: publish a static site folder to S3. main() only parses, wires and runs.
#include "aws/aws.h"
#include "cli/cli.h"

int main(int argc, char** argv) {
  sitesync::aws::GlobalInit();
  auto parsed = sitesync::cli::ParseCommandLine(argc, argv);
  if (parsed.exit_now) return *parsed.exit_now;
  return sitesync::cli::Run(parsed.settings);
}
