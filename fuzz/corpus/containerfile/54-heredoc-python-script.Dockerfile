FROM python:3.12-slim
WORKDIR /app
COPY <<EOF /app/main.py
import os

def main():
    # a comment inside the heredoc is content
    print(os.environ.get("GREETING", "hello"))

if __name__ == "__main__":
    main()
EOF
RUN python3 <<EOF
with open("/hello", "w") as f:
    print("Hello", file=f)
EOF
CMD ["python", "/app/main.py"]
