FROM alpine
ADD --keep-git-dir=true https://github.com/example/project.git#v1.0.0 /src/project
ADD --keep-git-dir https://github.com/example/other.git /src/other
