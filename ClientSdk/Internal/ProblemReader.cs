using System.Net;
using System.Text;
using System.Text.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Internal;

/// <summary>Turns an error answer, problem+json or not, into a <see cref="MetaApiException"/>.</summary>
internal static class ProblemReader
{
    /// <summary>Code for an answer the client could not make sense of (Kafka's name for an unexpected server error).</summary>
    internal const string UnknownServerError = "UNKNOWN_SERVER_ERROR";

    private const int MaxBodyChars = 4096;

    /// <summary>Statuses that, by HTTP semantics, mean the request was not processed and may be sent again.</summary>
    internal static bool IsRefusedUnprocessed(int status) => status is 429 or 503;

    /// <summary>Statuses from a gateway or timeout: retryable, but a write may have been applied.</summary>
    internal static bool IsOutcomeUnknown(int status) => status is 502 or 504;

    internal static MetaApiException Create(HttpResponseMessage response, string body, Uri silo, bool idempotent)
    {
        var status = (int)response.StatusCode;
        string? code = null, title = null, detail = null;
        bool? retryable = null;
        if (LooksLikeJson(response, body))
        {
            try
            {
                using var document = JsonDocument.Parse(body);
                if (document.RootElement.ValueKind == JsonValueKind.Object)
                {
                    foreach (var member in document.RootElement.EnumerateObject())
                    {
                        switch (member.Name.ToLowerInvariant())
                        {
                            case "code" when member.Value.ValueKind == JsonValueKind.String:
                                code = member.Value.GetString();
                                break;
                            case "title" when member.Value.ValueKind == JsonValueKind.String:
                                title = member.Value.GetString();
                                break;
                            case "detail" when member.Value.ValueKind == JsonValueKind.String:
                                detail = member.Value.GetString();
                                break;
                            case "retryable" when member.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                                retryable = member.Value.GetBoolean();
                                break;
                        }
                    }
                }
            }
            catch (JsonException)
            {
                // Not the JSON it claimed to be: described from the raw body below.
            }
        }

        var answered = code is not null || title is not null || detail is not null;
        var text = answered
            ? detail ?? title
            : $"{(int)response.StatusCode} {response.ReasonPhrase}{(body.Length == 0 ? "" : ": " + Truncate(body))}";
        var isRetryable = retryable ?? (IsRefusedUnprocessed(status) || IsOutcomeUnknown(status));
        var outcomeUnknown = isRetryable && !idempotent && IsOutcomeUnknown(status);
        return new MetaApiException(
            string.IsNullOrEmpty(code) ? CodeFor(status) : code,
            text,
            status,
            isRetryable,
            silo,
            outcomeUnknown)
        {
            ShouldResend = isRetryable && !outcomeUnknown,
            RetryAfter = RetryAfter(response),
        };
    }

    internal static async Task<string> ReadBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        // Bounded: an error page from a proxy can be large and is only shown in a message.
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            var buffer = new char[64 * 1024];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await reader.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false)) > 0)
            {
                read += n;
            }

            return new string(buffer, 0, read);
        }
    }

    private static string CodeFor(int status) => status switch
    {
        400 => ErrorCodes.InvalidRequest,
        404 => ErrorCodes.NotFound,
        413 => ErrorCodes.RequestTooLarge,
        429 or 502 or 503 => ErrorCodes.Unavailable,
        504 => ErrorCodes.Timeout,
        _ => UnknownServerError,
    };

    private static bool LooksLikeJson(HttpResponseMessage response, string body)
    {
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        return mediaType is not null
            ? mediaType.EndsWith("json", StringComparison.OrdinalIgnoreCase)
            : body.TrimStart().StartsWith('{');
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        return retryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : null;
    }

    private static string Truncate(string body) => body.Length <= MaxBodyChars ? body : body[..MaxBodyChars] + "…";

    internal static bool IsSuccess(HttpStatusCode status) => (int)status is >= 200 and < 300;
}
