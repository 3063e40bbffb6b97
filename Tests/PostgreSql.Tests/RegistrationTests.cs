using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class RegistrationTests
{
    [Fact]
    public void Options_validation_lists_every_problem()
    {
        var result = new PostgresStorageOptionsValidator().Validate(
            Options.DefaultName, new PostgresStorageOptions
            {
                ClusterId = " ",
                MaxBatchSize = 0,
                MaxConcurrentBatches = -1,
                MaxReadBatchSize = 0,
                MaxConcurrentReadBatches = 0,
                MaxAppendingBatches = 0,
            });

        Assert.True(result.Failed);
        Assert.Equal(6, result.Failures!.Count());
    }

    [Fact]
    public void Options_defaults_are_valid_once_a_cluster_id_is_set()
    {
        var options = new PostgresStorageOptions { ClusterId = "c" };

        Assert.Equal((512, 4), (options.MaxBatchSize, options.MaxConcurrentBatches));
        Assert.Equal((1024, 4), (options.MaxReadBatchSize, options.MaxConcurrentReadBatches));
        Assert.True(new PostgresStorageOptionsValidator().Validate(Options.DefaultName, options).Succeeded);
    }

    [Fact]
    public async Task Registered_storage_migrates_at_host_start_and_serves_as_the_grain_storage()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: false);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPostgresGrainStorage(database.ConnectionString, "registration-cluster");
        await using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        var storage = provider.GetRequiredService<IGrainStorage>();
        Assert.Same(provider.GetRequiredService<PostgresGrainStorage>(), storage);
        Assert.Equal(1, await storage.WriteAsync(new GrainId("topic", "t"), "state", Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task Registered_metadata_log_reads_what_the_registered_storage_appends_for_the_same_cluster()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: true);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPostgresGrainStorage(database.ConnectionString, "registration-cluster");
        await using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        var log = provider.GetRequiredService<IMetadataLog>();
        Assert.Same(provider.GetRequiredService<PostgresMetadataLog>(), log);
        var write = new StateWrite(Json.Bytes("{}"), 0, [new LogRecord("topic", "t", Json.Bytes("{}"))], []);
        var result = await provider.GetRequiredService<IGrainStorage>().WriteAsync(new GrainId("topic", "t"), "state", write, CancellationToken.None);

        Assert.Equal(1, result.LastLogOffset);
        Assert.Equal(["t"], (await log.ReadAsync(0, 10, CancellationToken.None)).Select(record => record.Key));
    }
}
