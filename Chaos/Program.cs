using System.Globalization;
using OrleansMeta.Chaos;

// The long form by hand: dotnet Chaos/bin/.../OrleansMeta.Chaos.dll --minutes 10 --seed 7 (scripts/chaos.sh).
var options = new ChaosOptions { Log = line => Console.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {line}") };
for (var i = 0; i < args.Length; i += 2)
{
    if (args[i] == "--keep-logs")
    {
        options.KeepLogs = true;
        i--;
        continue;
    }

    if (i + 1 >= args.Length)
    {
        Console.Error.WriteLine($"{args[i]} needs a value");
        return 2;
    }

    switch (args[i])
    {
        case "--minutes":
            options.Duration = TimeSpan.FromMinutes(double.Parse(args[i + 1], CultureInfo.InvariantCulture));
            break;
        case "--seed":
            options.Seed = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            break;
        case "--max-operations":
            options.MaxOperations = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]}; use --minutes M --seed N [--max-operations K] [--keep-logs]");
            return 2;
    }
}

var report = await new ChaosRunner(options).RunAsync();
Console.WriteLine(report);
return report.Violations.Count == 0 ? 0 : 1;
