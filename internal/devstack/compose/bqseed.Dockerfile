# The local profile's BigQuery seeding job (docker-compose.yml, service bigquery-seed): the
# demo account's six sample tables, as `make demo` seeds them. Build context: the repository.
# It links the devstack package, whose read-back checks use DuckDB, so it builds with cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -o /out/bqseed ./internal/devstack/compose/bqseed

FROM debian:bookworm-slim
COPY --from=build /out/bqseed /usr/local/bin/bqseed
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/bqseed"]
