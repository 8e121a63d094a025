FROM continuumio/miniconda3
WORKDIR /app
COPY environment.yml .
RUN --mount=type=cache,target=/opt/conda/pkgs conda env create -f environment.yml
SHELL ["conda", "run", "-n", "myenv", "/bin/bash", "-c"]
RUN python -c "import flask"
ENTRYPOINT ["conda", "run", "--no-capture-output", "-n", "myenv", "python", "run.py"]
