# Sourced by infra/setup.d steps: installs a pinned requirements file into a project-local venv under
# .venvs/, stamped with the file's sha256 so a re-run is a sub-second no-op while the pins are unchanged.
#   ensure_venv VENV REQS MARKER_BIN
# Returns 0 after installing or when already up to date; the caller prints versions afterwards.
# Env: VW2_PYTHON picks the interpreter (default python3, ≥ 3.10).
ensure_venv() {
  local venv="$1" reqs="$2" marker="$3"
  local stamp="$venv/.vw2-requirements.sha256" want
  want="$(sha256sum "$reqs" | cut -d' ' -f1)"
  if [ -x "$venv/bin/$marker" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    VENV_STATUS="up to date"
    return 0
  fi
  mkdir -p .venvs
  # keep the venvs out of git without touching the shared .gitignore
  [ -f .venvs/.gitignore ] || printf '*\n' > .venvs/.gitignore
  [ -x "$venv/bin/python" ] || "${VW2_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$reqs"
  echo "$want" > "$stamp"
  VENV_STATUS="installed"
}
