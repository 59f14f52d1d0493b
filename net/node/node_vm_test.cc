// VMs on a real cluster (issue 15): three worker processes run QEMU VMs
// (TCG without /dev/kvm) on an empty qcow2 base. A VM reaches RUNNING;
// stop, start and migrate issued back to back end in the states asked for,
// every observed state change along the seed's VM table; a VM of a missing
// image FAILS; deleted VMs leave no QEMU process behind. Skipped, with the
// reason, only where qemu-img is not installed (tools/bootstrap installs
// it). Checks read the cluster through the client protocol only.
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "gtest/gtest.h"
#include "net/api/client.h"
#include "net/testing/process_cluster.h"

namespace blixard::net {
namespace {

using std::chrono::seconds;
using testing::ClientFor;
using testing::ProcessCluster;
using testing::ProcessClusterOptions;

// The seed's table of observed VM states: from -> what it may become.
const std::map<cluster::VmObservedState, std::set<cluster::VmObservedState>> kLegal = {
    {cluster::VM_OBSERVED_UNSPECIFIED, {cluster::VM_CREATING, cluster::VM_FAILED}},
    {cluster::VM_CREATING, {cluster::VM_STARTING, cluster::VM_STOPPED, cluster::VM_FAILED}},
    {cluster::VM_STARTING, {cluster::VM_RUNNING, cluster::VM_STOPPING, cluster::VM_FAILED}},
    {cluster::VM_RUNNING, {cluster::VM_STOPPING, cluster::VM_FAILED}},
    {cluster::VM_STOPPING, {cluster::VM_STOPPED, cluster::VM_FAILED}},
    {cluster::VM_STOPPED, {cluster::VM_STARTING, cluster::VM_FAILED}},
    {cluster::VM_FAILED, {cluster::VM_STARTING, cluster::VM_STOPPED}},
};

// Pids of live QEMU processes that run in a folder under `path`.
std::vector<int> QemuProcessesUnder(const std::string& path) {
  std::vector<int> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"));
    std::stringstream text;
    text << in.rdbuf();
    const std::string cmdline = text.str();
    char cwd[4096];
    const ssize_t n = readlink(absl::StrCat("/proc/", pid, "/cwd").c_str(), cwd, sizeof cwd - 1);
    if (n <= 0) continue;
    if (cmdline.find("qemu-system") != std::string::npos &&
        std::string(cwd, static_cast<size_t>(n)).rfind(path, 0) == 0) {
      pids.push_back(pid);
    }
  }
  closedir(proc);
  return pids;
}

class NodeVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("qemu-img --version >/dev/null 2>&1") != 0 ||
        std::system("qemu-system-x86_64 --version >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "QEMU is not installed (tools/bootstrap installs qemu-system-x86 and "
                      "qemu-utils): no VM can start here";
    }
    ProcessClusterOptions options = testing::TestClusterOptions("vms");
    base_dir_ = options.base_dir;
    options.extra_flags = {"--vm_driver=qemu", "--vm_powerdown_grace_ms=500"};
    ASSERT_OK_AND_ASSIGN(cluster_, ProcessCluster::Create(std::move(options)));
    image_ = absl::StrCat(base_dir_, "/base.qcow2");
    ASSERT_EQ(std::system(absl::StrCat("qemu-img create -f qcow2 ", image_, " 64M >/dev/null")
                              .c_str()),
              0);
    ASSERT_OK(cluster_->StartAll());
    client_ = ClientFor(cluster_->endpoints());
  }

  void Write(cluster::Command command) {
    api::ClientRequest request;
    *request.mutable_command() = std::move(command);
    absl::StatusOr<api::ClientResponse> response = client_->Call(request);
    ASSERT_OK(response.status());
    ASSERT_EQ(response->status(), api::ClientResponse::STATUS_OK) << response->error();
    ASSERT_EQ(response->result().code(), cluster::RESULT_OK) << response->result().message();
  }

  void Create(const std::string& name, const std::string& image) {
    cluster::Command create;
    create.mutable_create_vm()->set_name(name);
    cluster::VmSpec* spec = create.mutable_create_vm()->mutable_spec();
    spec->set_image(image);
    spec->set_vcpus(1);
    spec->set_memory_mb(128);
    spec->set_disk_gb(1);
    Write(create);
    cluster::Command start;
    start.mutable_start_vm()->set_name(name);
    Write(start);
  }

  // Every VM as the cluster holds it now; each observed change since the
  // last call is checked against the table.
  std::map<std::string, cluster::VmRecord> Observe() {
    api::ClientRequest request;
    request.mutable_query()->mutable_list_vms();
    absl::StatusOr<api::ClientResponse> response = client_->Call(request);
    std::map<std::string, cluster::VmRecord> vms;
    if (!response.ok() || response->status() != api::ClientResponse::STATUS_OK) return vms;
    for (const cluster::VmRecord& vm : response->query_result().vms()) {
      vms[vm.name()] = vm;
      auto last = last_.find(vm.name());
      // A new placement (generation) starts its observations afresh.
      if (last != last_.end() && last->second.generation() == vm.generation() &&
          last->second.observed() != vm.observed()) {
        EXPECT_EQ(kLegal.at(last->second.observed()).count(vm.observed()), 1u)
            << vm.name() << ": " << cluster::VmObservedState_Name(last->second.observed())
            << " -> " << cluster::VmObservedState_Name(vm.observed());
      }
      last_[vm.name()] = vm;
    }
    return vms;
  }

  bool WaitFor(const std::function<bool(const std::map<std::string, cluster::VmRecord>&)>& done,
               seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(Observe())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  static bool Is(const std::map<std::string, cluster::VmRecord>& vms, const std::string& name,
                 cluster::VmObservedState state) {
    auto it = vms.find(name);
    return it != vms.end() && it->second.observed() == state;
  }

  std::string base_dir_;
  std::string image_;
  std::unique_ptr<ProcessCluster> cluster_;
  std::unique_ptr<Client> client_;
  std::map<std::string, cluster::VmRecord> last_;
};

TEST_F(NodeVmTest, QemuVmsRunStopMigrateAndLeaveNothingBehind) {
  Create("vm1", image_);
  Create("vm2", image_);
  Create("bad", "/no/such/image.qcow2");
  ASSERT_TRUE(WaitFor(
      [](const auto& vms) {
        return Is(vms, "vm1", cluster::VM_RUNNING) && Is(vms, "vm2", cluster::VM_RUNNING);
      },
      seconds(120)))
      << Observe()["vm1"].DebugString() << Observe()["vm2"].DebugString();
  EXPECT_FALSE(QemuProcessesUnder(base_dir_).empty()) << "RUNNING without a QEMU process";
  EXPECT_TRUE(WaitFor([](const auto& vms) { return Is(vms, "bad", cluster::VM_FAILED); },
                      seconds(60)))
      << Observe()["bad"].DebugString();

  // Back to back: vm1 stopped and started again; vm2 migrated, then
  // stopped. Each ends as last asked, through legal states only.
  cluster::Command command;
  command.mutable_stop_vm()->set_name("vm1");
  Write(command);
  command.mutable_start_vm()->set_name("vm1");
  Write(command);
  const uint64_t vm2_worker = Observe()["vm2"].worker_id();
  command.mutable_migrate_vm()->set_name("vm2");
  Write(command);
  command.mutable_stop_vm()->set_name("vm2");
  Write(command);
  ASSERT_TRUE(WaitFor(
      [](const auto& vms) {
        return Is(vms, "vm1", cluster::VM_RUNNING) && Is(vms, "vm2", cluster::VM_STOPPED);
      },
      seconds(120)))
      << Observe()["vm1"].DebugString() << Observe()["vm2"].DebugString();
  EXPECT_NE(Observe()["vm2"].worker_id(), vm2_worker) << "vm2 did not move";

  // Deleted: gone from the cluster, and no QEMU process of ours is left.
  for (const std::string name : {"vm1", "vm2", "bad"}) {
    command.mutable_delete_vm()->set_name(name);
    Write(command);
  }
  EXPECT_TRUE(WaitFor([](const auto& vms) { return vms.empty(); }, seconds(30)));
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (!QemuProcessesUnder(base_dir_).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(QemuProcessesUnder(base_dir_).empty()) << "a QEMU process outlived its VM";
}

}  // namespace
}  // namespace blixard::net
