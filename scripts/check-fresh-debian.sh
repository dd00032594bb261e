#!/usr/bin/env bash
# Runs the README's two commands (scripts/demo.sh, then scripts/test.sh) as a new user would: in a fresh
# Debian 12 (a debootstrap of bookworm) holding a clean clone of this repository's HEAD with ../shared beside
# it, as CI has them, and prints each command's result and time. Needs root (debootstrap, chroot, mounts).
#   scripts/check-fresh-debian.sh            demo, then the test suite
#   scripts/check-fresh-debian.sh --demo     the demo only
#   scripts/check-fresh-debian.sh --cache    only make the cached bookworm tree
#   DETRQ_FRESH_SHARED=DIR                   the ../shared to put beside the clone (default: ../shared)
# The bare bookworm tree is cached as a tarball ($DETRQ_FRESH_CACHE, default /var/cache/detrq-fresh-debian);
# everything else is made anew on every run and removed at the end ($DETRQ_FRESH_KEEP=1 keeps it).
# The host's apt sources and proxy/auth settings, CA certificates and pip configuration are copied in, so the
# fresh system reaches the same package registries as the host; nothing else of the host's is.
set -euo pipefail

# It runs for an hour while the checkout may change: bash reads a script as it goes, so run from a copy.
if [[ -z ${DETRQ_FRESH_REPO:-} ]]; then
  copy=$(mktemp /tmp/check-fresh-debian.XXXXXX)
  cp "$0" "$copy"
  DETRQ_FRESH_REPO=$(cd "$(dirname "$0")/.." && pwd) exec bash "$copy" "$@"
fi
rm -f "$0"
repo=$DETRQ_FRESH_REPO
# The team's reference folder, beside the clone as CI has it ($DETRQ_FRESH_SHARED: where it is here, for a
# checkout that is a git worktree somewhere else).
shared=${DETRQ_FRESH_SHARED:-$(dirname "$repo")/shared}
cache=${DETRQ_FRESH_CACHE:-/var/cache/detrq-fresh-debian}
mirror=${DETRQ_FRESH_MIRROR:-http://deb.debian.org/debian}
mode=${1:-all}
case "$mode" in all | --demo | --cache) ;; *) echo "usage: scripts/check-fresh-debian.sh [--demo | --cache]" >&2; exit 2 ;; esac
if [[ $(id -u) -ne 0 ]]; then
  echo "check-fresh-debian: error: needs root (debootstrap, chroot and mounts): run it with sudo" >&2
  exit 2
fi

say() { echo "check-fresh-debian: $*" >&2; }

# The bare system, made once: a plain debootstrap of bookworm (the default variant: what a new Debian 12
# machine has before anything is installed for detrq).
tarball="$cache/bookworm-$(dpkg --print-architecture).tar"
make_cached_tree() {
  [[ -f $tarball ]] && return
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >&2; }
  mkdir -p "$cache"
  local tree="$cache/tree.partial"
  rm -rf "$tree"
  say "debootstrap bookworm from $mirror (once; cached in $tarball)"
  debootstrap bookworm "$tree" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  tar -C "$tree" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
  rm -rf "$tree"
}
make_cached_tree
[[ $mode == --cache ]] && exit 0

root=$(mktemp -d /var/tmp/detrq-fresh.XXXXXX)
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  if [[ ${DETRQ_FRESH_KEEP:-0} == 1 ]]; then say "kept $root"; else rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"

# Package registries: apt sources, keyrings and any Acquire (proxy, auth, validity) settings; DNS; CAs; pip.
copy_in() { for f in "$@"; do [[ -e $f ]] && mkdir -p "$root$(dirname "$f")" && cp -a "$f" "$root$f"; done; return 0; }
copy_in /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/trusted.gpg.d /etc/apt/keyrings /etc/apt/auth.conf \
  /etc/apt/auth.conf.d /etc/resolv.conf /etc/hosts /usr/local/share/ca-certificates /etc/ssl/certs/ca-certificates.crt \
  /etc/pip.conf /root/.config/pip /root/.pip
rm -f "$root"/etc/apt/sources.list.d/*.disabled*
for f in /etc/apt/apt.conf.d/*; do
  grep -qE '^[[:space:]]*Acquire' "$f" && copy_in "$f"
done
pip_env=()
while IFS='=' read -r name value; do
  pip_env+=("$name=$value")
  for path in $value; do [[ $path == /* && -e $path ]] && copy_in "$path"; done  # PIP_CERT, PIP_FIND_LINKS, ...
done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY)=' || true)

# The repository as a clean clone of HEAD (what is committed, nothing else), and ../shared beside it.
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
  say "note: uncommitted changes in $repo are not part of this check (it clones HEAD)"
fi
head=$(git -C "$repo" rev-parse HEAD)
git clone -q --no-local "$repo" "$root/src/detrq"
git -C "$root/src/detrq" checkout -q --detach "$head"
if [[ -d $shared ]]; then
  cp -a "$shared" "$root/src/shared"
else
  say "warning: no $shared (set DETRQ_FRESH_SHARED): the tests that need ../shared will skip"
fi

# The tree bound onto itself first: a real machine's / is a mount point, which `unshare --mount` (the install
# test hides the source tree with it) needs.
mount --bind "$root" "$root" && mounts+=("$root")
for m in proc sys dev dev/pts; do
  case $m in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sysfs "$root/sys" ;;
    *) mount --bind "/$m" "$root/$m" ;;
  esac
  mounts+=("$root/$m")
done
mount -t tmpfs tmpfs "$root/dev/shm" && mounts+=("$root/dev/shm")

# Runs one README command inside, as root in a login-like environment; prints its result and time.
results=()
run_inside() {
  local command=$1 log="$cache/$(basename "$1" .sh).log" start rc=0
  say "running $command in a fresh bookworm at ${head:0:12} (log: $log)"
  start=$(date +%s)
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb "${pip_env[@]}" bash -c "cd /src/detrq && $command; rc=\$?; times; exit \$rc" >"$log" 2>&1 ||
    rc=$?
  local seconds=$(($(date +%s) - start))
  local verdict=passed
  ((rc == 0)) || { verdict="FAILED (exit $rc)"; tail -30 "$log" >&2; }
  # `times`' last line: the CPU time of everything the command ran (the wall time depends on the machine's load).
  local cpu
  cpu=$(tail -1 "$log" | awk '{print "cpu " $1 " user + " $2 " system"}')
  results+=("$(printf '%-16s %-18s %dm%02ds wall, %s' "$command" "$verdict" $((seconds / 60)) $((seconds % 60)) "$cpu")")
  say "${results[-1]}"
  return "$rc"
}
status=0
run_inside scripts/demo.sh || status=1
if [[ $mode == all ]]; then run_inside scripts/test.sh || status=1; fi

echo "fresh Debian 12 (bookworm, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)), detrq ${head:0:12}:"
printf '  %s\n' "${results[@]}"
grep -h '^demo: ' "$cache/demo.log" | sed 's/^/  /' || true
exit "$status"
