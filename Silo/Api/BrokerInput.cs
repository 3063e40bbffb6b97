using System.Text.RegularExpressions;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Checks a broker registration before the broker grain is called, listing every problem with the field it concerns.
/// Listener names follow Kafka's use of them (the part before <c>://</c> in <c>listeners</c>, and a segment of config
/// keys such as <c>listener.name.internal.ssl.keystore.location</c>), so they are letters, digits, '_' and '-'. Hosts are
/// what Kafka's listener parser accepts (names, IPv4, IPv6), and must be set: a registration advertises where clients
/// connect.
/// </summary>
internal static partial class BrokerInput
{
    public static readonly string[] SecurityProtocols = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

    public const int MaxRackLength = 255;

    public static void Validate(BrokerRegistrationRequest request)
    {
        var problems = new List<string>();
        if (request.IncarnationId == Guid.Empty)
        {
            problems.Add("$.incarnationId must be a new random UUID per broker process, not the empty UUID");
        }

        var listeners = request.Listeners ?? [];
        if (listeners.Count == 0)
        {
            problems.Add("$.listeners must name at least one listener clients can connect to");
        }

        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < listeners.Count; i++)
        {
            var listener = listeners[i];
            var at = $"$.listeners[{i}]";
            if (string.IsNullOrEmpty(listener.Name) || !ListenerName().IsMatch(listener.Name))
            {
                problems.Add($"{at}.name '{listener.Name}' must be 1-64 letters, digits, '_' or '-' (for example PLAINTEXT or INTERNAL)");
            }
            else if (!names.Add(listener.Name))
            {
                problems.Add($"{at}.name '{listener.Name}' is used by an earlier listener; listener names are unique (case-insensitively, as Kafka compares them)");
            }

            if (string.IsNullOrEmpty(listener.Host) || listener.Host.Length > 253 || !Host().IsMatch(listener.Host))
            {
                problems.Add($"{at}.host '{listener.Host}' must be a host name or IP address clients can reach (letters, digits, '-', '.', '_', ':', '%', at most 253 characters)");
            }

            if (listener.Port is < 1 or > 65535)
            {
                problems.Add($"{at}.port {listener.Port} must be from 1 to 65535");
            }

            if (!SecurityProtocols.Contains(listener.SecurityProtocol, StringComparer.Ordinal))
            {
                problems.Add($"{at}.securityProtocol '{listener.SecurityProtocol}' must be one of {string.Join(", ", SecurityProtocols)}");
            }
        }

        if (request.Rack is { } rack && (rack.Length is 0 or > MaxRackLength || !Rack().IsMatch(rack)))
        {
            problems.Add($"$.rack '{rack}' must be 1-{MaxRackLength} letters, digits, '.', '_', '-', ':' or '/' (or omitted)");
        }

        if (problems.Count > 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"Invalid broker registration: {string.Join("; ", problems)}.");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex ListenerName();

    [GeneratedRegex(@"^(\[[0-9a-fA-F:.%A-Za-z]+\]|[0-9A-Za-z%._:-]+)$")]
    private static partial Regex Host();

    [GeneratedRegex("^[A-Za-z0-9._:/-]+$")]
    private static partial Regex Rack();
}
