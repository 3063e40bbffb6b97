using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Internal;

/// <summary>
/// The client side of <c>GET /v1/watch</c>: reads Server-Sent Events, and after a disconnect or a silo's death
/// reconnects to the next bootstrap silo asking for the offset after the last one it yielded, so the caller sees every
/// record once, in order.
/// </summary>
internal static class WatchStream
{
    public static async IAsyncEnumerable<WatchEvent> RunAsync(
        MetaTransport transport,
        WatchFilter? filter,
        long? fromOffset,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var baseQuery = Query(filter);

        // The last offset the caller has everything up to (a record, a finished snapshot, or progress): the next
        // connection asks for the offset after it. Null until then: ask for a snapshot again.
        long? seen = fromOffset - 1;
        var failures = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (silo, index) = transport.CurrentSilo();
            var path = "v1/watch?" + baseQuery + (seen is { } s ? (baseQuery.Length > 0 ? "&" : "") + "fromOffset=" + Num(s + 1) : "");
            Connection? connection = null;
            try
            {
                connection = await Connection.OpenAsync(transport, new Uri(silo, path), cancellationToken).ConfigureAwait(false);
            }
            catch (MetaApiException e) when (e.IsRetryable)
            {
                // Unreachable, not ready, or overloaded: another silo may serve the watch.
            }

            if (connection is not null)
            {
                using (connection)
                {
                    var inSnapshot = false;
                    while (true)
                    {
                        Frame? frame;
                        try
                        {
                            frame = await connection.ReadAsync(transport.WatchIdleTimeout, cancellationToken).ConfigureAwait(false);
                        }
                        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException)
                        {
                            frame = null; // Broken or silent: reconnect.
                        }

                        if (frame is null)
                        {
                            break;
                        }

                        if (frame.Event == "cut-off")
                        {
                            var cut = JsonSerializer.Deserialize(frame.Data, MetaJsonContext.Default.WatchCutOff);
                            if (cut is not null && !inSnapshot && cut.ResumeFrom - 1 > (seen ?? long.MinValue))
                            {
                                seen = cut.ResumeFrom - 1;
                            }

                            break;
                        }

                        var item = JsonSerializer.Deserialize(frame.Data, MetaJsonContext.Default.WatchEvent);
                        if (item is null)
                        {
                            continue;
                        }

                        failures = 0;
                        switch (item.Kind)
                        {
                            case WatchEventKinds.SnapshotStart:
                                inSnapshot = true;
                                break;
                            case WatchEventKinds.SnapshotEnd:
                                inSnapshot = false;
                                seen = item.Offset;
                                break;
                            case WatchEventKinds.Record or WatchEventKinds.Progress:
                                if (item.Offset <= seen)
                                {
                                    continue; // Never yield an offset twice (a silo never sends one; this keeps it so).
                                }

                                seen = item.Offset;
                                break;
                        }

                        // The caller has the metadata up to `seen` now; the client's reads must not go back before it.
                        transport.Session.Observe(seen ?? 0);
                        yield return item;
                    }
                }
            }

            // Whatever broke, the next attempt goes to another silo; after several in a row, wait a little first.
            transport.MoveOnFrom(index);
            if (failures++ > 0)
            {
                await Task.Delay(Backoff(transport.RetryDelays, failures), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static TimeSpan Backoff((TimeSpan Base, TimeSpan Max) delays, int failures)
    {
        var exponent = Math.Min(failures - 1, 16);
        var delay = delays.Base * Math.Pow(2, exponent) * (0.5 + Random.Shared.NextDouble() / 2);
        return delay < delays.Max ? delay : delays.Max;
    }

    internal static string Query(WatchFilter? filter)
    {
        if (filter is null)
        {
            return "";
        }

        var parts = new List<string>();
        foreach (var topic in filter.Topics ?? [])
        {
            parts.Add("topics=" + Uri.EscapeDataString(topic));
        }

        if (filter.TopicPrefix is { } prefix)
        {
            parts.Add("topicPrefix=" + Uri.EscapeDataString(prefix));
        }

        foreach (var broker in filter.Brokers ?? [])
        {
            parts.Add("brokers=" + Num(broker));
        }

        foreach (var group in filter.Groups ?? [])
        {
            parts.Add("groups=" + Uri.EscapeDataString(group));
        }

        foreach (var kind in filter.Kinds ?? [])
        {
            parts.Add("kinds=" + Uri.EscapeDataString(kind));
        }

        return string.Join('&', parts);
    }

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>One SSE event: its <c>event:</c> name and its <c>data:</c>.</summary>
    private sealed record Frame(string Event, string Data);

    /// <summary>One open stream from a silo.</summary>
    private sealed class Connection : IDisposable
    {
        private readonly HttpResponseMessage _response;
        private readonly StreamReader _reader;

        private Connection(HttpResponseMessage response, StreamReader reader)
        {
            _response = response;
            _reader = reader;
        }

        public static async Task<Connection> OpenAsync(MetaTransport transport, Uri url, CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Accept.ParseAdd("text/event-stream");
            request.Headers.Accept.ParseAdd("application/problem+json");
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(transport.WatchIdleTimeout);
            HttpResponseMessage response;
            try
            {
                response = await transport.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                throw new MetaApiException(ErrorCodes.Unavailable, $"Could not open the watch: {e.Message}", statusCode: null,
                    isRetryable: true, url, outcomeUnknown: false, e);
            }

            if (!ProblemReader.IsSuccess(response.StatusCode))
            {
                using (response)
                {
                    var body = await ProblemReader.ReadBodyAsync(response.Content, cancellationToken).ConfigureAwait(false);
                    throw ProblemReader.Create(response, body, url, idempotent: true);
                }
            }

            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new Connection(response, new StreamReader(stream, Encoding.UTF8));
        }

        /// <summary>The next event, or null when the stream ended. Comments (keep-alives) only reset the idle limit.</summary>
        public async Task<Frame?> ReadAsync(TimeSpan idleTimeout, CancellationToken cancellationToken)
        {
            string? name = null;
            StringBuilder? data = null;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                linked.CancelAfter(idleTimeout);
                var line = await _reader.ReadLineAsync(linked.Token).ConfigureAwait(false);
                if (line is null)
                {
                    return null;
                }

                if (line.Length == 0)
                {
                    if (data is not null)
                    {
                        return new Frame(name ?? "message", data.ToString());
                    }

                    name = null;
                    continue;
                }

                if (line[0] == ':')
                {
                    continue;
                }

                var colon = line.IndexOf(':', StringComparison.Ordinal);
                var field = colon < 0 ? line : line[..colon];
                var value = colon < 0 ? "" : line[(colon + 1)..];
                if (value.StartsWith(' '))
                {
                    value = value[1..];
                }

                switch (field)
                {
                    case "event":
                        name = value;
                        break;
                    case "data":
                        data = data is null ? new StringBuilder(value) : data.Append('\n').Append(value);
                        break;
                }
            }
        }

        public void Dispose()
        {
            _reader.Dispose();
            _response.Dispose();
        }
    }
}
