# Sourced by ./retroinfer and ./run-tests: exports JAVA_HOME pointing at a JDK 25 or newer (the
# JAVA_HOME you set, else the newest /usr/lib/jvm/*25* ...), and checks that Maven is installed.
# On failure it says what to install and returns 1.

retroinfer_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

retroinfer_find_jdk() {
  local candidate major
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*25* /usr/lib/jvm/*2[6-9]* /usr/lib/jvm/*3[0-9]*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ] || continue
    major=$(retroinfer_java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then
      export JAVA_HOME="$candidate"
      return 0
    fi
  done
  cat >&2 <<'MSG'
RetroInfer needs a JDK 25 or newer (Temurin 25 recommended), and none was found:
JAVA_HOME is unset or older, and /usr/lib/jvm has no JDK 25.
Install one, e.g.
  Debian/Ubuntu: apt install temurin-25-jdk   (Adoptium repository: https://adoptium.net/installation/linux/)
  or unpack a Temurin 25 archive and point JAVA_HOME at it,
then run this command again.
MSG
  return 1
}

retroinfer_find_maven() {
  if ! command -v mvn >/dev/null 2>&1; then
    echo "RetroInfer builds with Apache Maven 3.8 or newer, and 'mvn' is not on the PATH." >&2
    echo "Install it (Debian/Ubuntu: apt install maven) and run this command again." >&2
    return 1
  fi
}

retroinfer_find_jdk && retroinfer_find_maven
