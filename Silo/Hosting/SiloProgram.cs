using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Silo.Hosting;

/// <summary>
/// The silo's entry point. A silo that cannot start because of its settings (invalid options, a port in use) says so
/// in sentences, every problem listed, and exits with <see cref="SettingsExitCode"/>; the host's own report of the
/// failure (a stack trace) is held back while starting, since the sentences say everything an operator needs.
/// </summary>
public static partial class SiloProgram
{
    /// <summary>The exit code of a silo refused by its settings (64: EX_USAGE of sysexits.h, a configuration error).</summary>
    public const int SettingsExitCode = 64;

    private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    public static int Run(string[] args)
    {
        var starting = 1;
        WebApplication app;
        try
        {
            // The content root is the directory of the binary, not the working directory: appsettings.json ships
            // beside the binary, and a silo started from elsewhere (scripts, a container's WORKDIR) must still read
            // it. Without it every request was logged at Information, which cost a tenth of the silo's CPU.
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
            builder.AddMetaSilo();
            builder.Logging.AddFilter(HostCategory, level => level >= LogLevel.Information && !(Volatile.Read(ref starting) == 1 && level >= LogLevel.Error));
            app = builder.Build();

            // Every option is checked before anything reads one (mapping the endpoints does), so all problems are
            // reported together rather than the first one read.
            app.Services.GetService<IStartupValidator>()?.Validate();
            app.MapMetaSilo();
            app.Start();
        }
        catch (Exception exception) when (Problems(exception) is { Count: > 0 } problems)
        {
            Console.Error.WriteLine($"The silo cannot start: {(problems.Count == 1 ? "a setting needs" : $"{problems.Count} settings need")} fixing.");
            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"  - {problem}");
            }

            return SettingsExitCode;
        }

        Interlocked.Exchange(ref starting, 0);
        app.WaitForShutdown();
        return 0;
    }

    /// <summary>The settings problems behind a start-up failure, as sentences; empty when the failure is something else.</summary>
    public static List<string> Problems(Exception exception)
    {
        var problems = new List<string>();
        var all = exception is AggregateException aggregate ? aggregate.Flatten().InnerExceptions : [exception];
        foreach (var failure in all)
        {
            switch (failure)
            {
                case OptionsValidationException options:
                    problems.AddRange(options.Failures);
                    break;
                case IOException io when io.InnerException is AddressInUseException || io.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse }:
                    var address = Address().Match(io.Message) is { Success: true } match ? match.Groups["address"].Value : "its address";
                    var port = Uri.TryCreate(address, UriKind.Absolute, out var uri) ? uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?";
                    problems.Add($"Port {port} ({address}) is already in use by another process. Stop that process, or give this silo another port: " +
                        "--urls=http://127.0.0.1:<port> for the public API, --Meta:Cluster:SiloEndpoint=http://127.0.0.1:<port> for silo-to-silo calls " +
                        "(or --Meta:Cluster:SiloListenEndpoint when the silo listens for its peers on another port than it advertises).");
                    break;
                default:
                    // Not a settings problem: let it surface as it is.
                    return [];
            }
        }

        return problems;
    }

    [GeneratedRegex("bind to address (?<address>\\S+?):? address already in use", RegexOptions.IgnoreCase)]
    private static partial Regex Address();
}
