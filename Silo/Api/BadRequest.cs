using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using OrleansMeta.Contracts;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Sentences for requests the framework could not bind: an unreadable JSON body (naming the field and the type
/// expected), a path or query value of the wrong type (naming the parameter), a missing body.
/// </summary>
internal static partial class BadRequest
{
    public static (int Status, string Code, bool Retryable, string Detail) Describe(BadHttpRequestException bad, HttpContext? context)
    {
        var status = bad.StatusCode is >= 400 and < 500 ? bad.StatusCode : StatusCodes.Status400BadRequest;
        if (bad.InnerException is JsonException json)
        {
            // The exception handler runs with the endpoint cleared; the feature keeps the one that failed.
            var endpoint = context?.Features.Get<IExceptionHandlerFeature>()?.Endpoint ?? context?.GetEndpoint();
            var requestType = endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
            return (status, ErrorCodes.InvalidRequest, false, JsonInput.Describe(json, requestType));
        }

        if (BindFailure().Match(bad.Message) is { Success: true } bind)
        {
            var name = bind.Groups["name"].Value;
            var routeValues = context?.Features.Get<IExceptionHandlerFeature>()?.RouteValues ?? context?.Request.RouteValues;
            var where = routeValues?.ContainsKey(name) == true ? "path parameter" : "query parameter";
            var typeName = bind.Groups["type"].Value.TrimEnd('?');
            typeName = typeName.StartsWith("Nullable<", StringComparison.Ordinal) ? typeName[9..^1] : typeName;
            var type = typeName switch
            {
                "int" or "Int32" => typeof(int),
                "long" or "Int64" => typeof(long),
                "short" or "Int16" => typeof(short),
                "bool" or "Boolean" => typeof(bool),
                "Guid" => typeof(Guid),
                _ => null,
            };
            return (status, ErrorCodes.InvalidRequest, false, $"The {where} '{name}' must be {JsonInput.Expected(type)}; got '{bind.Groups["value"].Value}'.");
        }

        if (bad.Message.Contains("from body", StringComparison.Ordinal) || bad.Message.Contains("no body was provided", StringComparison.Ordinal))
        {
            return (status, ErrorCodes.InvalidRequest, false, "This request needs a JSON body (an object); none was sent.");
        }

        return (status, ErrorCodes.InvalidRequest, false, $"The request could not be read: {bad.Message}");
    }

    [GeneratedRegex("""Failed to bind parameter "(?<type>[^ "]+\??) (?<name>[^"]+)" from "(?<value>.*)"\.""")]
    private static partial Regex BindFailure();
}
