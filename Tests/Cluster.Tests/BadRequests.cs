using FsCheck;
using FsCheck.Fluent;

namespace OrleansMeta.Cluster.Tests;

/// <summary>A request to a write endpoint with at least one defect.</summary>
public sealed record BadRequest(string Method, string Path, string? ContentType, string? Body, string Defects)
{
    public override string ToString()
        => $"{Method} {Path} [{ContentType ?? "no content type"}] {(Body is { Length: > 300 } ? Body[..300] + "…" : Body)} (defects: {Defects})";
}

/// <summary>
/// Generators of bad requests: each write endpoint with a body that would be accepted, then one to three defects
/// (a wrong type, a null where a value is required, a missing required field, an unknown field, a duplicate key, a
/// wrong content type, broken JSON, a bad path value). Every defect alone makes the request invalid, whatever other
/// defects it is combined with (a duplicate adds two copies, so a later "missing" or an earlier one cannot undo it), so any request
/// that is not refused shows up as a failure or as a state change.
/// </summary>
internal static class BadRequests
{
    private const string Json = "application/json";

    private enum Kind { Int32, OptionalInt32, OptionalInt16, Int64, Bool, String, OptionalString, Guid, IntArray, OptionalAssignment, Listeners, ElectionPartitions, OptionalConfigs, Configs, AlterTopics, ConfigTopics }

    private sealed record Field(string Name, Kind Kind, string Valid, bool Required);

    private sealed record Endpoint(string Method, string Path, string[] BadPaths, Field[] Fields);

    /// <summary>The request as it is being spoiled.</summary>
    private sealed record Draft(string Path, string? ContentType, List<(string Name, string Value)> Fields, Func<string, string>? Spoil);

    private sealed record Defect(string Name, Func<Draft, Draft> Apply);

    private static readonly string[] UnknownNames = ["partitonz", "extra", "__proto__", "$type", "validate_only", "replication_factor", "Name ", "x-y"];

    private static readonly string[] AnyValues = ["1", "null", "\"x\"", "{}", "[]", "true", "1e400"];

    private static readonly Endpoint[] Endpoints =
    [
        new("POST", "/v1/topics", [],
        [
            new("name", Kind.String, "\"fuzz-created\"", true),
            new("partitions", Kind.OptionalInt32, "1", false),
            new("replicationFactor", Kind.OptionalInt16, "1", false),
            new("configs", Kind.OptionalConfigs, "{\"retention.ms\":\"1000\"}", false),
            new("assignment", Kind.OptionalAssignment, "null", false),
            new("validateOnly", Kind.Bool, "false", false),
        ]),
        new("DELETE", "/v1/topics/exists", ["/v1/topics/bad%20name", "/v1/topics/never-created", "/v1/topics/a_b", "/v1/topics/__consumer_offsets", "/v1/topics/" + new string('x', 250), "/v1/topics/%2E"], []),
        new("POST", "/v1/topics/exists/partitions", ["/v1/topics/bad%20name/partitions", "/v1/topics/never-created/partitions", "/v1/topics/a_b/partitions"],
        [
            new("totalCount", Kind.Int32, "5", true),
            new("assignment", Kind.OptionalAssignment, "null", false),
            new("validateOnly", Kind.Bool, "false", false),
        ]),
        new("PATCH", "/v1/topics/exists/configs", ["/v1/topics/bad%20name/configs", "/v1/topics/never-created/configs", "/v1/topics/a_b/configs"],
        [
            new("configs", Kind.Configs, "{\"retention.ms\":\"2000\"}", true),
            new("validateOnly", Kind.Bool, "false", false),
        ]),
        new("POST", "/v1/topics/exists/partitions/0/isr",
            ["/v1/topics/exists/partitions/x/isr", "/v1/topics/exists/partitions/-1/isr", "/v1/topics/exists/partitions/99999999999/isr", "/v1/topics/exists/partitions/7/isr", "/v1/topics/never-created/partitions/0/isr", "/v1/topics/bad%20name/partitions/0/isr"],
        [
            new("leaderId", Kind.Int32, "1", true),
            new("brokerEpoch", Kind.Int64, "1", true),
            new("leaderEpoch", Kind.Int32, "0", true),
            new("partitionEpoch", Kind.Int32, "0", true),
            new("newIsr", Kind.IntArray, "[1]", true),
        ]),
        new("POST", "/v1/brokers/1/alter-partition", ["/v1/brokers/abc/alter-partition", "/v1/brokers/-1/alter-partition", "/v1/brokers/99999999999/alter-partition"],
        [
            new("brokerEpoch", Kind.Int64, "1", true),
            new("topics", Kind.AlterTopics, $"[{{\"topic\":\"exists\",\"partitions\":[{AlterItem}]}}]", true),
        ]),
        new("POST", "/v1/configs", [],
        [
            new("topics", Kind.ConfigTopics, "[{\"topic\":\"exists\",\"configs\":{\"retention.ms\":\"3000\"}}]", true),
            new("validateOnly", Kind.Bool, "false", false),
        ]),
        new("POST", "/v1/elections", [],
        [
            new("type", Kind.String, "\"preferred\"", true),
            new("partitions", Kind.ElectionPartitions, "[{\"topic\":\"exists\",\"partitions\":[0]}]", false),
        ]),
        new("POST", "/v1/brokers/50/registration", ["/v1/brokers/abc/registration", "/v1/brokers/-1/registration", "/v1/brokers/99999999999/registration", "/v1/brokers/1.5/registration", "/v1/brokers/%20/registration"],
        [
            new("incarnationId", Kind.Guid, "\"7d0b5c1e-9a4f-4c7a-8e2d-3b6f1a0c9d55\"", true),
            new("listeners", Kind.Listeners, "[{\"name\":\"PLAINTEXT\",\"host\":\"broker-50\",\"port\":9092,\"securityProtocol\":\"PLAINTEXT\"}]", true),
            new("rack", Kind.OptionalString, "\"r\"", false),
        ]),
        new("POST", "/v1/brokers/1/heartbeat", ["/v1/brokers/abc/heartbeat", "/v1/brokers/-1/heartbeat", "/v1/brokers/99999999999/heartbeat"],
        [
            new("brokerEpoch", Kind.Int64, "999999", true),
            new("currentMetadataOffset", Kind.Int64, "0", true),
            new("wantShutDown", Kind.Bool, "false", false),
        ]),
    ];

    private const string AlterItem = "{\"partition\":0,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[1]}";

    /// <summary>Values that are wrong for a field of each kind (null only where null is not allowed).</summary>
    private static string[] WrongValues(Kind kind) => kind switch
    {
        Kind.Int32 => ["\"1\"", "true", "{}", "[]", "1.5", "1e400", "2147483648", "-2147483649", "\"x\"", "null", "99999999999999999999999"],
        Kind.OptionalInt32 => ["\"1\"", "true", "{}", "[]", "1.5", "1e400", "2147483648", "-2147483649", "\"x\""],
        Kind.OptionalInt16 => ["32768", "-32769", "70000", "\"1\"", "1.5", "true", "{}", "[]"],
        Kind.Int64 => ["9223372036854775808", "-9223372036854775809", "1.5", "\"1\"", "true", "{}", "[]", "null", "1e400"],
        Kind.Bool => ["1", "0", "\"true\"", "{}", "[]", "null", "\"yes\""],
        Kind.String => ["5", "true", "{}", "[]", "null", "1.5"],
        Kind.OptionalString => ["5", "true", "{}", "[]"],
        Kind.Guid => ["\"not-a-uuid\"", "5", "\"\"", "null", "{}", "\"00000000-0000-0000-0000-000000000000\""],
        Kind.IntArray => ["null", "[null]", "5", "\"x\"", "{}", "[\"1\"]", "[1.5]", "[[1]]", "[1,null]", "[99999999999]"],
        Kind.OptionalAssignment => ["[null]", "[[null]]", "[1]", "[[\"a\"]]", "{}", "5", "[[1.5]]", "\"x\"", "[[99999999999]]", "[[1,null]]"],
        Kind.Listeners =>
        [
            "null", "[null]", "[5]", "{}", "[]",
            "[{\"name\":null,\"host\":\"h\",\"port\":9092}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":\"x\"}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":9092,\"extra\":1}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":0}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":70000}]",
            "[{\"name\":\"P\",\"host\":\"\",\"port\":9092}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":9092,\"securityProtocol\":\"TLS\"}]",
            "[{\"name\":\"P\",\"host\":\"h\",\"port\":9092},{\"name\":\"P\",\"host\":\"h2\",\"port\":9093}]",
            "[{\"name\":\"P\",\"name\":\"Q\",\"host\":\"h\",\"port\":9092}]",
        ],
        Kind.ElectionPartitions =>
        [
            "[null]", "5", "{}", "[]", "\"x\"",
            "[{\"topic\":null,\"partitions\":[0]}]",
            "[{\"topic\":\"exists\",\"partitions\":null}]",
            "[{\"topic\":\"exists\",\"partitions\":[null]}]",
            "[{\"topic\":\"exists\"}]",
            "[{\"topic\":\"exists\",\"partitions\":[0],\"x\":1}]",
            "[{\"topic\":5,\"partitions\":[0]}]",
        ],
        Kind.AlterTopics =>
        [
            "null", "[]", "[null]", "5", "{}", "\"x\"",
            "[{\"topic\":\"exists\",\"partitions\":[]}]",
            "[{\"topic\":\"exists\",\"partitions\":null}]",
            "[{\"topic\":\"exists\",\"partitions\":[null]}]",
            "[{\"topic\":\"exists\"}]",
            $"[{{\"topic\":\"bad name\",\"partitions\":[{AlterItem}]}}]",
            $"[{{\"topic\":\"exists\",\"partitions\":[{AlterItem}]}},{{\"topic\":\"exists\",\"partitions\":[{AlterItem}]}}]",
            $"[{{\"topic\":\"exists\",\"partitions\":[{AlterItem},{AlterItem}]}}]",
            $"[{{\"topic\":\"exists\",\"partitions\":[{AlterItem}],\"x\":1}}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":-1,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[1]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":-1,\"partitionEpoch\":0,\"newIsr\":[1]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":\"0\",\"partitionEpoch\":0,\"newIsr\":[1]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":0,\"newIsr\":[1]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[1,1]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[null]}]}]",
            "[{\"topic\":\"exists\",\"partitions\":[{\"partition\":0,\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[1],\"x\":1}]}]",
        ],
        // Shape only: an unknown config or a bad value is that topic's own outcome (INVALID_CONFIG in a 200), as in Kafka.
        Kind.ConfigTopics =>
        [
            "null", "[]", "[null]", "5", "{}", "\"x\"",
            "[{\"topic\":\"exists\"}]",
            "[{\"topic\":\"exists\",\"configs\":{}}]",
            "[{\"topic\":\"exists\",\"configs\":null}]",
            "[{\"topic\":\"exists\",\"configs\":[]}]",
            "[{\"topic\":\"exists\",\"configs\":{\"retention.ms\":{}}}]",
            "[{\"topic\":\"exists\",\"configs\":{\"retention.ms\":\"1\",\"retention.ms\":\"2\"}}]",
            "[{\"topic\":\"bad name\",\"configs\":{\"retention.ms\":\"1\"}}]",
            "[{\"topic\":5,\"configs\":{\"retention.ms\":\"1\"}}]",
            "[{\"topic\":\"exists\",\"configs\":{\"retention.ms\":\"1\"},\"x\":1}]",
            "[{\"topic\":\"exists\",\"configs\":{\"retention.ms\":\"1\"}},{\"topic\":\"exists\",\"configs\":{\"retention.ms\":\"2\"}}]",
        ],
        Kind.OptionalConfigs => ["[]", "5", "\"x\"", "{\"retention.ms\":null}", "{\"retention.ms\":{}}", "{\"retention.ms\":[]}", "{\"nope\":\"1\"}", "{\"retention.ms\":\"soon\"}", "{\"retention.ms\":\"1\",\"retention.ms\":\"2\"}"],
        Kind.Configs => ["null", "[]", "5", "{}", "{\"retention.ms\":{}}", "{\"nope\":\"1\"}", "{\"retention.ms\":\"soon\"}", "{\"retention.ms\":\"1\",\"retention.ms\":\"2\"}", "{\"nope\":null}"],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Declared after the tables it reads (static fields initialise in order).</summary>
    public static Gen<BadRequest> Cases { get; } =
        from endpoint in Gen.Elements(Endpoints)
        from count in Gen.Choose(1, 3)
        from defects in Gen.ArrayOf(DefectFor(endpoint), count)
        select Render(endpoint, defects);

    private static Gen<Defect> DefectFor(Endpoint endpoint)
    {
        var defects = new List<Gen<Defect>>();
        if (endpoint.BadPaths.Length > 0)
        {
            defects.Add(Gen.Elements(endpoint.BadPaths).Select(path => new Defect($"path {path}", d => d with { Path = path })));
        }

        if (endpoint.Fields.Length > 0)
        {
            defects.Add(
                from field in Gen.Elements(endpoint.Fields)
                from value in Gen.Elements(WrongValues(field.Kind))
                select new Defect($"{field.Name}={value}", d => d with { Fields = [.. d.Fields.Select(f => f.Name == field.Name ? (f.Name, value) : f)] }));
            defects.Add(
                from name in Gen.Elements(UnknownNames)
                from value in Gen.Elements(AnyValues)
                select new Defect($"unknown {name}", d => d with { Fields = [.. d.Fields, (name, value)] }));
            defects.Add(
                from field in Gen.Elements(endpoint.Fields)
                select new Defect($"duplicate {field.Name}", d => d with { Fields = [.. d.Fields, (field.Name, field.Valid), (field.Name, field.Valid)] }));
            if (endpoint.Fields.Where(f => f.Required).ToArray() is { Length: > 0 } required)
            {
                defects.Add(
                    from field in Gen.Elements(required)
                    select new Defect($"missing {field.Name}", d => d with { Fields = [.. d.Fields.Where(f => f.Name != field.Name)] }));
            }

            defects.Add(
                from type in Gen.Elements<string?>(null, "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx")
                select new Defect($"content type {type ?? "none"}", d => d with { ContentType = type }));
            defects.Add(
                from cut in Gen.Choose(1, 99)
                select new Defect($"truncated at {cut}%", d => d with { Spoil = body => body[..Math.Max(1, Math.Min(body.Length - 1, body.Length * cut / 100))] }));
            defects.Add(
                from body in Gen.Elements("[]", "5", "\"x\"", "null", "true", "", " ", "{", "}", "{\"a\":}", "\u00ff\u00fe", "{}}", "[{}]")
                select new Defect($"body {body}", d => d with { Spoil = _ => body }));
        }

        return Gen.OneOf(defects);
    }

    private static BadRequest Render(Endpoint endpoint, Defect[] defects)
    {
        var draft = new Draft(endpoint.Path, endpoint.Fields.Length > 0 ? Json : null, [.. endpoint.Fields.Select(f => (f.Name, f.Valid))], null);
        foreach (var defect in defects)
        {
            draft = defect.Apply(draft);
        }

        string? body = null;
        if (endpoint.Fields.Length > 0)
        {
            body = "{" + string.Join(",", draft.Fields.Select(f => $"\"{f.Name}\":{f.Value}")) + "}";
            body = draft.Spoil?.Invoke(body) ?? body;
        }

        return new BadRequest(endpoint.Method, draft.Path, draft.ContentType, body, string.Join("; ", defects.Select(d => d.Name)));
    }
}
