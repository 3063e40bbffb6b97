using System.Globalization;
using OrleansMeta.Client;

namespace OrleansMeta.Examples;

/// <summary>
/// The command line every example takes: <c>--bootstrap URL[,URL...]</c> (default: the three silos
/// <c>scripts/cluster.sh start 3</c> runs) and its own <c>--name value</c> options.
/// </summary>
internal sealed class ExampleOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    private ExampleOptions()
    {
    }

    /// <summary>Silos of a cluster started with <c>scripts/cluster.sh start 3</c>.</summary>
    public const string DefaultBootstrap = "http://127.0.0.1:5100,http://127.0.0.1:5101,http://127.0.0.1:5102";

    /// <summary>Reads <c>--name value</c> pairs; throws <see cref="ArgumentException"/> with a sentence on anything else.</summary>
    public static ExampleOptions Parse(string[] args, params string[] known)
    {
        var options = new ExampleOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (!name.StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"Expected '--name value' pairs; '{name}' has no value. Options: --bootstrap, --{string.Join(", --", known)}.");
            }

            if (name != "--bootstrap" && !known.Contains(name[2..], StringComparer.Ordinal))
            {
                throw new ArgumentException($"Unknown option '{name}'. Options: --bootstrap, --{string.Join(", --", known)}.");
            }

            options._values[name[2..]] = args[++i];
        }

        return options;
    }

    /// <summary>A string option, or <paramref name="fallback"/>.</summary>
    public string Get(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    /// <summary>An integer option, or <paramref name="fallback"/>.</summary>
    public int GetInt(string name, int fallback)
        => _values.TryGetValue(name, out var text)
            ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
                : throw new ArgumentException($"--{name} must be a whole number; got '{text}'.")
            : fallback;

    /// <summary>A client for the silos named by <c>--bootstrap</c>.</summary>
    public MetaClient CreateClient() => new(new MetaClientOptions
    {
        BootstrapUrls = [.. Get("bootstrap", DefaultBootstrap).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(u => new Uri(u))],
    });

    /// <summary>Runs <paramref name="run"/> until Ctrl-C; prints a bad option or a refusal as one line.</summary>
    public static async Task<int> RunAsync(Func<CancellationToken, Task> run)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        try
        {
            await run(stop.Token);
            return 0;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or MetaApiException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}

/// <summary>Writes an example's lines, each prefixed with the time and who says it, to a writer shared by threads.</summary>
internal sealed class ExampleLog(TextWriter output, string who)
{
    private readonly Lock _lock = new();

    /// <summary>Writes one line.</summary>
    public void Say(string line)
    {
        lock (_lock)
        {
            output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {who}: {line}");
            output.Flush();
        }
    }
}
