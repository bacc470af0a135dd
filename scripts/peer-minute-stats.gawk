# Per-minute, per-host count, mean and p95 of the router service time, in one gawk pass
# (arrays of arrays and asort), from raw Heroku router log lines.
#
#   gawk -f scripts/peer-minute-stats.gawk FILE...
#
# Prints `MINUTE HOST COUNT MEAN P95`, where p95 is the value at 0-based rank
# floor(0.95 * (n - 1)) of the group's sorted values (the definition pulse's quantiles use).
# Keeps every value until the end, so input need not be in time order.
index($0, " heroku[router]: ") {
  i = index($0, " service=")
  if (!i) next
  j = index($0, " host=")
  h = "-"
  if (j) { h = substr($0, j + 6); h = substr(h, 1, index(h " ", " ") - 1) }
  k = substr($0, 1, 16) " " h
  s = substr($0, i + 9) + 0
  v[k][++n[k]] = s
  sum[k] += s
}
END {
  for (k in n) {
    asort(v[k], a)
    printf "%s %d %.17g %s\n", k, n[k], sum[k] / n[k], a[int(0.95 * (n[k] - 1)) + 1]
  }
}
