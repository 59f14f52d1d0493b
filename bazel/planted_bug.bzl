"""--define=planted_bug=NAME: which planted bug a build carries (issue 7).

core/base/planted_bug.h documents the bugs. One config_setting per known
name selects a local define for core/base/planted_bug.cc only, so switching
bugs recompiles one file. An unknown name fails the build at analysis time
(planted_bug_check), naming the known ones.
"""

# Name -> PlantedBug enumerator. Keep in step with core/base/planted_bug.h.
PLANTED_BUGS = {
    "vote_without_log_check": "kVoteWithoutLogCheck",
    "commit_previous_term": "kCommitPreviousTerm",
    "ack_before_durable": "kAckBeforeDurable",
    "read_without_read_index": "kReadWithoutReadIndex",
    "forget_vote_on_restart": "kForgetVoteOnRestart",
}

def planted_bug_config_settings():
    """One config_setting per planted bug: :planted_bug_<name>."""
    for name in PLANTED_BUGS:
        native.config_setting(
            name = "planted_bug_" + name,
            define_values = {"planted_bug": name},
        )

def planted_bug_local_defines():
    """BLIXARD_PLANTED_BUG=<enumerator> for the selected bug, none by default."""
    branches = {
        ":planted_bug_" + name: ["BLIXARD_PLANTED_BUG=" + enumerator]
        for name, enumerator in PLANTED_BUGS.items()
    }
    branches["//conditions:default"] = []
    return select(branches)

def _planted_bug_check_impl(ctx):
    # --define values are configuration ("Make") variables.
    name = ctx.var.get("planted_bug", "")
    if name not in ["", "none"] and name not in PLANTED_BUGS:
        fail("--define=planted_bug=%s: unknown planted bug (known: none, %s)" %
             (name, ", ".join(sorted(PLANTED_BUGS.keys()))))
    return [DefaultInfo()]

planted_bug_check = rule(
    implementation = _planted_bug_check_impl,
    doc = "Fails the build when --define=planted_bug names no known bug.",
)
