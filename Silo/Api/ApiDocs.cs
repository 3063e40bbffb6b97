using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using OrleansMeta.Contracts;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// What the OpenAPI document says beyond the success shapes: every endpoint's error responses with the problem schema
/// (including <c>code</c> and <c>retryable</c>) and the codes each status carries, and string fields that take a fixed
/// set of values as enums.
/// </summary>
internal static class ApiDocs
{
    public sealed record Problem(int Status, string[] Codes);

    /// <summary>What any request may meet.</summary>
    private static readonly Problem[] Common =
    [
        new(400, [ErrorCodes.InvalidRequest]),
        new(414, [ErrorCodes.InvalidRequest]),
        new(503, [ErrorCodes.Unavailable]),
        new(504, [ErrorCodes.Timeout]),
    ];

    /// <summary>Reads answered from the image (with <c>minOffset</c>).</summary>
    public static Problem[] Read { get; } = [.. Common, new(400, [ErrorCodes.OffsetOutOfRange]), new(504, [ErrorCodes.OffsetNotAvailable])];

    /// <summary>Reads with neither a body nor <c>minOffset</c>.</summary>
    public static Problem[] Plain { get; } = Common;

    /// <summary>Requests with a JSON body that a grain acts on.</summary>
    public static Problem[] Write { get; } =
    [
        .. Common,
        new(413, [ErrorCodes.RequestTooLarge]),
        new(415, [ErrorCodes.UnsupportedMediaType]),
        new(503, [ErrorCodes.NotController]),
    ];

    /// <summary>Declares the problem responses of an endpoint: <paramref name="common"/> plus its own.</summary>
    public static RouteHandlerBuilder Problems(this RouteHandlerBuilder builder, Problem[] common, params (int Status, string[] Codes)[] own)
    {
        var all = common.Concat(own.Select(o => new Problem(o.Status, o.Codes)))
            .GroupBy(p => p.Status)
            .OrderBy(g => g.Key)
            .Select(g => new Problem(g.Key, [.. g.SelectMany(p => p.Codes).Distinct()]))
            .ToList();
        foreach (var problem in all)
        {
            builder.ProducesProblem(problem.Status);
        }

        var codes = string.Join("; ", all.Select(p => $"{p.Status}: {string.Join(", ", p.Codes)}"));
        return builder.WithDescription($"Errors are application/problem+json with a `code` and `retryable`. Codes by status: {codes}.");
    }

    /// <summary>Adds <c>code</c> and <c>retryable</c> to the problem schema, and enums for fixed-value strings.</summary>
    public static void Configure(OpenApiOptions options) => options.AddSchemaTransformer((schema, context, _) =>
    {
        var type = context.JsonTypeInfo.Type;
        if (type == typeof(ProblemDetails) || type == typeof(HttpValidationProblemDetails))
        {
            schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
            schema.Properties["code"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Description = "Kafka-style error name; see each endpoint's description for the codes it may answer.",
                Enum = [.. AllCodes.Select(c => (JsonNode)JsonValue.Create(c))],
            };
            schema.Properties["retryable"] = new OpenApiSchema { Type = JsonSchemaType.Boolean, Description = "Whether the same request may succeed later." };
        }

        if (context.JsonPropertyInfo is { Name: "configs" } configs && schema is OpenApiSchema map
            && (configs.DeclaringType == typeof(CreateTopicRequest) || configs.DeclaringType == typeof(AlterConfigsRequest)))
        {
            // Values are strings (numbers and booleans are accepted and kept as written); in an alter, null removes the key.
            var removable = configs.DeclaringType == typeof(AlterConfigsRequest);
            map.AdditionalProperties = new OpenApiSchema
            {
                Type = JsonSchemaType.String | JsonSchemaType.Number | JsonSchemaType.Boolean | (removable ? JsonSchemaType.Null : 0),
            };
        }

        if (context.JsonPropertyInfo is { } property && Enums.TryGetValue((property.DeclaringType, property.Name), out var values) && schema is OpenApiSchema target)
        {
            target.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
        }

        return Task.CompletedTask;
    });

    private static readonly string[] AllCodes = [.. typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).Order(StringComparer.Ordinal)];

    /// <summary>String fields that take one of a fixed set of values (kept strings on the wire for Kafka's spellings).</summary>
    private static readonly Dictionary<(Type, string), string[]> Enums = new()
    {
        [(typeof(BrokerListener), "securityProtocol")] = BrokerInput.SecurityProtocols,
        [(typeof(BrokerInfo), "state")] = ["fenced", "unfenced", "controlled-shutdown"],
        [(typeof(ElectionRequest), "type")] = ["preferred", "unclean"],
        [(typeof(SiloInfo), "status")] = ["joining", "active", "shutting-down", "dead"],
        [(typeof(TopicConfigEntry), "source")] = ["DYNAMIC_TOPIC_CONFIG", "DEFAULT_CONFIG"],
    };
}
