# Extract `MINUTE HOST SERVICE_MS` from raw Heroku router log lines (awk: mawk or gawk).
#
#   mawk -f scripts/router-service.awk FILE | LC_ALL=C sort -k1,1 -k2,2 -k3,3n \
#     | mawk -f scripts/peer-minute-stats.awk
#
# MINUTE is the first 16 characters of the line (`2026-01-01T00:00`, the timestamps being
# UTC); HOST is the `host=` attribute (`-` when absent); SERVICE_MS the number in front of
# `ms` in `service=37ms`. Lines other than `heroku[router]:` ones with a service are skipped.
index($0, " heroku[router]: ") {
  i = index($0, " service=")
  if (!i) next
  j = index($0, " host=")
  h = "-"
  if (j) { h = substr($0, j + 6); h = substr(h, 1, index(h " ", " ") - 1) }
  print substr($0, 1, 16), h, substr($0, i + 9) + 0
}
