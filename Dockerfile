# Build and run mssdispatch in a container (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/mssdispatch ./cmd/mssdispatch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mssdispatch --create-home mssdispatch
COPY --from=build /out/mssdispatch /usr/local/bin/mssdispatch
COPY testdata/demo /usr/share/mssdispatch/demo
USER mssdispatch
WORKDIR /var/lib/mssdispatch
EXPOSE 2575 8080
ENTRYPOINT ["mssdispatch"]
CMD ["serve"]
