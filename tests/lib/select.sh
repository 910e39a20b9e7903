# select.sh - shared by tests/integ/run.sh and tests/browser/run.sh:
# which test files to run, and in which group.
#
#   select_tests <what> <dir> [-n name-pattern] [file|NN-name|NN ...]
#
# Arguments name files (a path, "20-message" or just "20" for
# <dir>/20*.test.js); none means every <dir>/[0-9][0-9]-*.test.js.
# Sets $parallel and $serial (space-separated paths: files whose header
# holds the line " * integ: serial" go to $serial) and $name_pattern.
select_tests() {
	_what=$1 _dir=$2
	shift 2
	name_pattern=
	_files=
	while [ $# -gt 0 ]; do
		case $1 in
		-n) [ $# -ge 2 ] || { echo "$_what: -n needs a name pattern" >&2; exit 2; }
			name_pattern=$2; shift 2; continue ;;
		-n*) name_pattern=${1#-n}; shift; continue ;;
		esac
		if [ -f "$1" ]; then
			_files="$_files $1"
		else
			_n=0
			for _f in "$_dir/$1".test.js "$_dir/$1"*.test.js; do
				[ -f "$_f" ] || continue
				case " $_files " in *" $_f "*) ;; *) _files="$_files $_f"; _n=1 ;; esac
			done
			[ $_n -eq 1 ] || { echo "$_what: no test file $_dir/$1*.test.js" >&2; exit 2; }
		fi
		shift
	done
	[ -n "$_files" ] || _files=$(ls "$_dir"/[0-9][0-9]-*.test.js)
	parallel= serial=
	for _f in $_files; do
		if grep -q '^ \* integ: serial' "$_f"; then serial="$serial $_f"; else parallel="$parallel $_f"; fi
	done
}
