# Per-group count, mean and p95 of sorted `MINUTE HOST VALUE` lines (awk: mawk or gawk).
#
#   ... | LC_ALL=C sort -k1,1 -k2,2 -k3,3n | mawk -f scripts/peer-minute-stats.awk
#
# Input must be sorted by minute and host, then numerically by value, so each group is a
# run of lines with its values ascending. Prints `MINUTE HOST COUNT MEAN P95`, where p95 is
# the value at 0-based rank floor(0.95 * (n - 1)) (the definition pulse's quantiles use).
function flush(   r) {
  if (n == 0) return
  r = int(0.95 * (n - 1))
  printf "%s %s %d %.17g %s\n", gm, gh, n, sum / n, v[r]
  n = 0; sum = 0
}
$1 != gm || $2 != gh { flush(); gm = $1; gh = $2 }
{ v[n++] = $3; sum += $3 }
END { flush() }
