using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Hosting;

/// <summary>Timings of the grain runtime.</summary>
public sealed class GrainRuntimeOptions
{
    public const string SectionName = "Meta:Runtime";

    /// <summary>How long an activation may go without a call before it is deactivated. Default: 15 minutes.</summary>
    public TimeSpan CollectionAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How often idle activations are looked for. Default: 1 minute.</summary>
    public TimeSpan CollectionQuantum { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Longest time loading state plus <c>OnActivateAsync</c> may take. Default: 30 seconds.</summary>
    public TimeSpan ActivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest time <c>OnDeactivateAsync</c> may take before the activation is dropped anyway. Default: 30 seconds.</summary>
    public TimeSpan DeactivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a caller waits for a grain call before it fails with a timeout. Default: 30 seconds.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Checks every timing at start-up and reports all problems at once.</summary>
public sealed class GrainRuntimeOptionsValidator : IValidateOptions<GrainRuntimeOptions>
{
    public ValidateOptionsResult Validate(string? name, GrainRuntimeOptions options)
    {
        var problems = new List<string>();
        Positive(nameof(options.CollectionAge), options.CollectionAge);
        Positive(nameof(options.CollectionQuantum), options.CollectionQuantum);
        Positive(nameof(options.ActivationTimeout), options.ActivationTimeout);
        Positive(nameof(options.DeactivationTimeout), options.DeactivationTimeout);
        Positive(nameof(options.CallTimeout), options.CallTimeout);
        if (options.CollectionQuantum > options.CollectionAge)
        {
            problems.Add($"{SectionName}:CollectionQuantum ({options.CollectionQuantum}) is longer than CollectionAge ({options.CollectionAge}); " +
                         "idle grains would live up to twice as long as asked. Set CollectionQuantum to at most CollectionAge.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);

        void Positive(string key, TimeSpan value)
        {
            if (value <= TimeSpan.Zero)
            {
                problems.Add($"{GrainRuntimeOptions.SectionName}:{key} is {value}; it must be a positive duration such as 00:00:30.");
            }
        }
    }

    private const string SectionName = GrainRuntimeOptions.SectionName;
}
