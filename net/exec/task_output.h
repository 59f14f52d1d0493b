// A task's combined stdout and stderr: one file per task, rotated by size,
// and the tail that goes into the task's kExited event.
//
// Why a file the child writes directly, and not a pipe the loop reads: a
// pipe's read end lives in the node process, so a crash of the node would
// take the task's output channel with it (the task would die of SIGPIPE or
// block on a full pipe), and env.h says work outlives the node process. The
// file is opened O_APPEND and handed to the child as fds 1 and 2; the child
// and its own children keep writing to it whoever watches.
//
// Rotation is copy-truncate, done by the executor on a periodic check
// (ProcessExecutorOptions::output_check_interval_us): when output.log has
// passed the cap, its bytes are copied to output.log.1 (replacing the last
// rotation) and output.log is truncated to zero; the child's O_APPEND
// writes then land at the new end. The child keeps its fd, which is why a
// rename cannot rotate. The price, documented: bytes the task writes
// between the end of the copy and the truncate are lost (a window of one
// copy_file_range call), and the file may overshoot the cap by whatever
// the task writes in one check interval. Disk use per task stays below
// about 2 x (cap + one interval's output).
//
// Thread: stateless; the executor calls it on the loop thread. Each call
// is a few small syscalls, except a rotation, which copies up to the cap
// in the kernel (copy_file_range): bounded, and at most once per task per
// check interval.
#ifndef BLIXARD_NET_EXEC_TASK_OUTPUT_H_
#define BLIXARD_NET_EXEC_TASK_OUTPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::net {

inline constexpr char kOutputFileName[] = "output.log";
inline constexpr char kOutputRotatedFileName[] = "output.log.1";

// When <task_dir>/output.log is larger than `bytes_max`, rotates it (see
// above) and returns true; false when it is not over the cap or does not
// exist. Errors: ErrnoStatus naming the file; output.log is then left as
// it was (a failed copy never truncates). REQUIRES: bytes_max > 0.
absl::StatusOr<bool> RotateOutputIfOver(const std::string& task_dir,
                                        uint64_t bytes_max);

// The last `bytes_max` bytes the task wrote: the end of output.log, with
// the end of output.log.1 before it when output.log alone is shorter. Best
// effort: a missing or unreadable file counts as empty.
std::string ReadOutputTail(const std::string& task_dir, size_t bytes_max);

// `tail` with "[blixard] <note>\n" after it (on a line of its own), cut
// from the front to at most `bytes_max` bytes. The note is how a failure's
// reason reaches the Host, which sees only the tail.
std::string AppendNote(std::string tail, absl::string_view note,
                       size_t bytes_max);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_TASK_OUTPUT_H_
