// `blixard kv put|get|del|cas`: the replicated key-value store, through any
// endpoint (cli/client_flags.h has the shared flags and exit codes).
//
//   blixard kv put KEY VALUE
//   blixard kv get KEY
//   blixard kv del KEY
//   blixard kv cas KEY VERSION VALUE   # VERSION 0: the key must not exist
#ifndef BLIXARD_CLI_KV_COMMAND_H_
#define BLIXARD_CLI_KV_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& KvCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_KV_COMMAND_H_
