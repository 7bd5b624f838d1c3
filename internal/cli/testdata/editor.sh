#!/bin/sh
# A scripted $EDITOR for the `config edit` tests: editor.sh MODE FILE.
# It edits FILE in place with sed, like a person would with an editor.
set -eu
mode=$1
file=$2
case $mode in
valid) sed -i 's/parallelism: 2/parallelism: 4/' "$file" ;;
invalid) sed -i 's/parallelism: 2/parallelism: many/' "$file" ;;
noop) : ;;
fail) exit 3 ;;
invalid-then-valid)
	# First run breaks the file, second run fixes it: the re-edit loop.
	# DSO_TEST_EDITOR_STATE is a file outside the config directory.
	if [ -e "$DSO_TEST_EDITOR_STATE" ]; then
		sed -i 's/parallelism: many/parallelism: 4/' "$file"
	else
		: >"$DSO_TEST_EDITOR_STATE"
		sed -i 's/parallelism: 2/parallelism: many/' "$file"
	fi
	;;
*) echo "editor.sh: unknown mode $mode" >&2; exit 2 ;;
esac
