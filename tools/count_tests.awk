# Counts test cases in JUnit XML files written by `bazel test` (gtest's own
# XML, or Bazel's one-case XML for shell and replay tests). Prints
# "<passed> <failed> <skipped>". Records are split at '<', so each record
# starts with a tag name.
BEGIN { RS = "<"; total = 0; failed = 0; skipped = 0; in_case = 0 }
/^testcase[ >\/]/ {
  total++; in_case = 1; case_failed = 0
  if ($0 ~ /result="skipped"/) { skipped++; in_case = 0 }
  if ($0 ~ /\/>[ \t\r\n]*$/) in_case = 0
  next
}
/^\/testcase/ { in_case = 0; next }
/^(failure|error)[ >\/]/ {
  if (in_case && !case_failed) { failed++; case_failed = 1 }
  next
}
/^skipped[ >\/]/ { if (in_case) { skipped++; in_case = 0 } next }
END { printf "%d %d %d\n", total - failed - skipped, failed, skipped }
