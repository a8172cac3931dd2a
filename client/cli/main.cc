// kvcomp: compress and decompress LLM KV caches through a kvcomp-server, and inspect .kvc
// files. One file per subcommand in this folder.
#include <iostream>

#include "client/cli/common.h"

int main(int argc, char** argv) {
  using namespace kvcomp::cli;
  RemoveTemporariesOnInterrupt();
  CLI::App app{
      "kvcomp: compress LLM KV caches through a kvcomp-server.\n"
      "Inputs and outputs: a dump folder (raw layer{L}_{k,v}.f16/.f32 files plus "
      "manifest.json), a .npy file, a .npz archive or a .safetensors file. A .kvc file is the "
      "concatenated "
      "self-describing frames of one cache.",
      "kvcomp"};
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);
  std::vector<Command> commands = {
      AddCompressCommand(app), AddDecompressCommand(app), AddAnalyzeCommand(app),
      AddInfoCommand(app),     AddHealthCommand(app),     AddGenerateCommand(app),
      AddBenchCommand(app),    AddLoadCommand(app),       AddCodecsCommand(app)};
  for (Command& c : commands) c.app->footer(kExitCodesHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  for (Command& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return kExitUsage;
}
