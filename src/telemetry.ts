import { Logger } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * OpenTelemetry metrics for Prometheus, when `METRICS_PORT` is set: registers a `MeterProvider`
 * whose reader is a `PrometheusExporter` as the global meter provider, which serves
 * `GET http://<host>:<METRICS_PORT>/metrics`. The lock module records `lock.acquire.duration`,
 * `lock.held`, `lock.lost` and `lock.skipped` through the global provider, so call this first thing
 * in `main.ts`, before the Nest application is created.
 *
 * @returns the registered provider, or `undefined` when `METRICS_PORT` is not set (nothing is
 * recorded then, and nothing fails).
 */
export function startMetrics(): MeterProvider | undefined {
  if (!process.env.METRICS_PORT) return undefined;
  const port = Number(process.env.METRICS_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`METRICS_PORT must be a TCP port, not ${process.env.METRICS_PORT}`);
  }
  const logger = new Logger('Metrics');
  const exporter = new PrometheusExporter({ port }, (error) => {
    if (error) logger.error(`cannot serve /metrics on port ${port}: ${String(error)}`);
  });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  return provider;
}
