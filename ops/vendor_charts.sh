#!/usr/bin/env bash
# Refresh the charting libraries `autocap report` inlines (pipeline/report/vendor/) from npm:
#   ops/vendor_charts.sh [CHARTJS_VERSION] [MATRIX_VERSION]
# They are committed so that `autocap report` works on a runtime-only install (no node).
set -euo pipefail
cd "$(dirname "$0")/.."
chartjs=${1:-4.5.1}
matrix=${2:-3.0.0}
vendor=pipeline/report/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@$chartjs" "chartjs-chart-matrix@$matrix" >/dev/null)
versions="# Charting libraries inlined into \`autocap report\`'s HTML (so it opens offline).
# Refresh with ops/vendor_charts.sh, which takes them from npm and rewrites this file."
for spec in "chart.js $chartjs dist/chart.umd.min.js" \
            "chartjs-chart-matrix $matrix dist/chartjs-chart-matrix.min.js"; do
    read -r name version file <<<"$spec"
    mkdir "$work/$name"
    tar xzf "$work/$name-$version.tgz" -C "$work/$name"
    cp "$work/$name/package/$file" "$vendor/"
    cp "$work/$name/package/LICENSE"* "$vendor/LICENSE-$name.md"
    sum=$(sha256sum "$vendor/$(basename "$file")" | cut -d' ' -f1)
    versions+=$'\n'"$name $version $file $(basename "$file") $sum"
done
printf '%s\n' "$versions" > "$vendor/versions.txt"
echo "vendored chart.js $chartjs and chartjs-chart-matrix $matrix into $vendor"
