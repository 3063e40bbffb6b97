using OrleansMeta.Examples;

// dotnet run --project examples/Consumer -- --group billing --topic orders [--name consumer-a] [--bootstrap http://127.0.0.1:5100,...]
return await ExampleOptions.RunAsync(async stop =>
{
    var options = ExampleOptions.Parse(args, "group", "topic", "name");
    using var client = options.CreateClient();
    var consumer = new ExampleConsumer(client, options.Get("group", "billing"), options.Get("topic", "orders"), options.Get("name", $"consumer-{Environment.ProcessId}"), Console.Out);
    await consumer.RunAsync(stop);
});
