#!/bin/sh
# Installs the Debian 12 packages Refuge needs to build, run and test.
# As root it runs apt-get itself; otherwise it prints the exact line to run.
# Usage: scripts/deps.sh [build|check|bench|fuzz|deb]
set -eu
BUILD="build-essential meson ninja-build pkg-config clang libsodium-dev libmicrohttpd-dev
libsqlite3-dev libjansson-dev libunistring-dev libcurl4-openssl-dev libseccomp-dev gettext python3
libjpeg62-turbo-dev libpng-dev libexif-dev libpoppler-glib-dev libcairo2-dev libpq-dev"
CHECK="libcmocka-dev chromium chromium-l10n nodejs npm curl diceware hunspell-ru fortunes-ru mueller7-dict mythes-ru
hunspell-uk mythes-uk manpages-uk tesseract-ocr tesseract-ocr-ukr sqlite3 binutils tor
postgresql postgresql-client"
BENCH="nginx-light wrk sqlite3 postgresql postgresql-client" # bench/pg_submit.sh: a throwaway cluster
FUZZ="clang libclang-rt-14-dev"
# make deb, and its test (tests/e2e/test_deb.py): Debian's packaging tools, a
# Debian root from the mirror, systemd-analyze for the unit and systemd-nspawn
# to boot the root with systemd when the machine allows it.
DEB="debhelper dpkg-dev lintian mmdebstrap systemd systemd-container"
what=${1:-build}
case "$what" in
build) pkgs="$BUILD" ;;
check) pkgs="$BUILD $CHECK $DEB" ;;
bench) pkgs="$BUILD $BENCH" ;;
fuzz) pkgs="$BUILD $FUZZ" ;;
deb) pkgs="$BUILD $DEB" ;;
*) echo "usage: $0 [build|check|bench|fuzz|deb]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    # A node/npm already on the PATH (e.g. from NodeSource) serves; Debian's
    # npm package would conflict with it.
    case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Refuge needs these Debian packages. Run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian's tor package starts a tor that joins the public network as soon as
# it is installed. The tests need the program only (they run private tors on
# loopback), so no service may start during the install: a policy-rc.d that
# answers 101 (forbidden) for the duration, unless one is already in place
# (containers have one); and with systemd running, the unit is masked first.
policy=/usr/sbin/policy-rc.d
own_policy=0
case " $missing " in
*" tor "*)
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# written by refuge scripts/deps.sh during an install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    if [ -d /run/systemd/system ]; then
        systemctl mask tor.service tor@default.service >/dev/null 2>&1 || true
    fi
    ;;
esac
apt-get update -qq >/dev/null || apt-get update
apt-get install -y -qq --no-install-recommends $missing >/dev/null
if [ "$own_policy" = 1 ]; then
    rm -f "$policy"
    trap - EXIT
fi
# Whatever the policy, no tor of the package's may be left running.
case " $missing " in
*" tor "*)
    if [ -d /run/systemd/system ]; then
        systemctl stop tor.service tor@default.service >/dev/null 2>&1 || true
        echo "tor is installed with its service masked (the tests run private tors on loopback);" >&2
        echo "to run Debian's tor (e.g. for refuge serve --onion): systemctl unmask tor && systemctl start tor" >&2
    elif [ -f /run/tor/tor.pid ]; then
        kill "$(cat /run/tor/tor.pid)" 2>/dev/null || true
    fi
    ;;
esac
