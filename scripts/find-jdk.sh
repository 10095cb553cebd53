# Sourced by ./retroinfer, ./run-tests and benchmarks/bench.sh: exports JAVA_HOME pointing at a JDK
# 25 or newer (the JAVA_HOME you set, else the newest /usr/lib/jvm/*25* ...), adds to MAVEN_OPTS the
# flag that keeps Maven quiet on it, and checks that Maven is installed.
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

# Maven's own libraries (Guava) call sun.misc.Unsafe, which JDK 24+ warns about on every build;
# allowing it is what the warning asks of applications that still need it. Set only for a JDK 25
# found above: older JVMs reject the option.
retroinfer_quiet_maven() {
  case " ${MAVEN_OPTS:-} " in
    *" --sun-misc-unsafe-memory-access="*) ;;
    *) export MAVEN_OPTS="--sun-misc-unsafe-memory-access=allow${MAVEN_OPTS:+ $MAVEN_OPTS}" ;;
  esac
}

# A filter for a JVM's standard error: the JVM announces every incubator module in use before main()
# starts ("WARNING: Using incubator modules: jdk.incubator.vector") and has no option to stay quiet;
# the Vector API is still an incubator module in JDK 25. That first line is dropped; the rest passes
# unchanged and unbuffered (progress bars redraw in place). Use: java ... 2> >(this >&2)
retroinfer_drop_incubator_notice() {
  local first
  if IFS= read -r first; then
    [[ "$first" == "WARNING: Using incubator modules: "* ]] || printf '%s\n' "$first"
  else
    printf '%s' "$first" # output without a line end
  fi
  exec cat
}

retroinfer_find_jdk && retroinfer_quiet_maven && retroinfer_find_maven
