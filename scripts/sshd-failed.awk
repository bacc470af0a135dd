# scripts/bench patterns: failed sshd logins per minute by source address, as
# "MONTH DAY HH:MM IP COUNT" lines.
$5 ~ /^sshd\[/ && $6 == "Failed" && $7 == "password" {
  ip = ($9 == "invalid") ? $13 : $11
  c[$1 " " $2 " " substr($3, 1, 5) " " ip]++
}
END { for (k in c) print k, c[k] }
