using Microsoft.AspNetCore.Diagnostics;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Turns every failure into problem+json with a Kafka-style <c>code</c>, a sentence for people in <c>detail</c>, and
/// <c>retryable</c>, so clients know what happened and whether to try again.
/// </summary>
internal sealed partial class ProblemMapping(IProblemDetailsService problems, ILogger<ProblemMapping> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, retryable, detail) = Classify(exception, context);
        if (status == StatusCodes.Status500InternalServerError)
        {
            // Refusals explain themselves to the caller; only the unexpected deserves the operator's attention.
            LogUnexpected(logger, exception, context.Request.Method, context.Request.Path);
        }

        context.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails =
            {
                Status = status,
                Title = Title(status),
                Detail = detail,
                Extensions = { ["code"] = code, ["retryable"] = retryable },
            },
        });
    }

    /// <summary>Gives the responses the framework writes itself (unknown route, wrong method) a code as well.</summary>
    public static void AddDefaults(ProblemDetailsContext context)
    {
        var extensions = context.ProblemDetails.Extensions;
        if (!extensions.ContainsKey("code"))
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            extensions["code"] = status switch
            {
                404 => ErrorCodes.NotFound,
                405 => ErrorCodes.InvalidRequest,
                413 => ErrorCodes.RequestTooLarge,
                415 => ErrorCodes.UnsupportedMediaType,
                >= 400 and < 500 => ErrorCodes.InvalidRequest,
                _ => "UNKNOWN_SERVER_ERROR",
            };
            extensions["retryable"] = status is 503 or 504;
        }

        var request = context.HttpContext.Request;
        context.ProblemDetails.Detail ??= (context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode) switch
        {
            404 => $"There is no endpoint {request.Method} {request.Path}; see /openapi/v1.json for the API.",
            405 => $"{request.Path} does not accept {request.Method}; see /openapi/v1.json for the API.",
            413 => "The request body is larger than this service accepts (1 MiB); send fewer items per request.",
            415 => $"Send the body as JSON with the header 'Content-Type: application/json' (this request said '{request.ContentType ?? "nothing"}').",
            var other => $"The request failed with HTTP {other}.",
        };
    }

    public static (int Status, string Code, bool Retryable, string Detail) Classify(Exception exception, HttpContext? context = null) => exception switch
    {
        MetaException meta => (meta.Status, meta.Code, meta.Retryable, meta.Message),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (413, ErrorCodes.RequestTooLarge, false,
            "The request body is larger than this service accepts (1 MiB); send fewer items per request."),
        BadHttpRequestException { StatusCode: StatusCodes.Status415UnsupportedMediaType } => (415, ErrorCodes.UnsupportedMediaType, false,
            $"Send the body as JSON with the header 'Content-Type: application/json' (this request said '{context?.Request.ContentType ?? "nothing"}')."),
        BadHttpRequestException { StatusCode: StatusCodes.Status414UriTooLong } tooLong => (414, ErrorCodes.InvalidRequest, false, tooLong.Message),
        BadHttpRequestException bad => BadRequest.Describe(bad, context),
        GrainCallTimeoutException timeout => (504, ErrorCodes.Timeout, true, timeout.Message),
        FencedWriteException fenced => (503, ErrorCodes.NotController, true, fenced.Message),
        GrainRuntimeException { IsRetryable: true } runtime => (503, ErrorCodes.Unavailable, true, runtime.Message),
        OperationCanceledException => (503, ErrorCodes.Unavailable, true, "The request was cancelled while the service was busy or stopping; retry."),

        // Reached only by reads the endpoint makes itself (the log head): writes go through grain state, which turns a
        // database failure into WriteOutcomeUnknownException. Nothing was written, so the answer is a plain retry.
        System.Data.Common.DbException or TimeoutException => (503, ErrorCodes.Unavailable, true,
            "This silo could not reach its database just now, so nothing was done; retry (another silo may answer)."),
        _ => (500, "UNKNOWN_SERVER_ERROR", false, "An unexpected error occurred; the service logged it."),
    };

    [LoggerMessage(3000, LogLevel.Error, "Unexpected error answering {Method} {Path}")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string method, string path);

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        404 => "Not found",
        409 => "Conflict",
        413 => "Request too large",
        414 => "URI too long",
        415 => "Unsupported media type",
        503 => "Service unavailable",
        504 => "Timed out",
        _ => "Server error",
    };
}
