FROM debian
RUN <<-EOT sh
	if true; then
		echo indented
	fi
	EOT
RUN python3 - <<-'PY'
	import sys
	print(sys.version)
	PY
